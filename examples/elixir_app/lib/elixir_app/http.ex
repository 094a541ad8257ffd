defmodule ElixirApp.Http do
  @moduledoc """
  A small HTTP/1.1 server on :gen_tcp, listening on 127.0.0.1:PORT.

  `GET /` answers the version, `GET /up` answers `ok`, `GET /slow?ms=N` answers the version after
  N ms, a `POST` echoes its body; every answer carries `X-Version`. Keep-alive connections are
  served until the client closes them. When the release stops (SIGTERM), the server stops
  accepting, closes idle connections and lets every request in flight finish before it exits.
  """
  use GenServer
  require Logger

  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @impl true
  def init(opts) do
    Process.flag(:trap_exit, true)
    port = Keyword.fetch!(opts, :port)
    listen_opts = [:binary, packet: :http_bin, active: false, reuseaddr: true, ip: {127, 0, 0, 1}, backlog: 1024]
    {:ok, listen} = :gen_tcp.listen(port, listen_opts)
    server = self()
    acceptor = spawn_link(fn -> accept(listen, server) end)
    Logger.info("elixir_app #{ElixirApp.version()} listening on 127.0.0.1:#{port}")
    {:ok, %{listen: listen, acceptor: acceptor, conns: MapSet.new()}}
  end

  @impl true
  def handle_cast({:conn, pid}, state) do
    Process.monitor(pid)
    {:noreply, %{state | conns: MapSet.put(state.conns, pid)}}
  end

  @impl true
  def handle_info({:DOWN, _ref, :process, pid, _}, state), do: {:noreply, %{state | conns: MapSet.delete(state.conns, pid)}}
  def handle_info({:EXIT, _pid, _reason}, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, state) do
    :gen_tcp.close(state.listen)
    Logger.info("stopping: #{MapSet.size(state.conns)} connection(s) to finish")
    Enum.each(state.conns, &send(&1, :drain))
    wait_for(state.conns, System.monotonic_time(:millisecond) + 25_000)
  end

  defp wait_for(conns, deadline) do
    if MapSet.size(conns) > 0 do
      left = max(deadline - System.monotonic_time(:millisecond), 0)
      receive do
        {:DOWN, _ref, :process, pid, _} -> wait_for(MapSet.delete(conns, pid), deadline)
      after
        left -> :ok
      end
    end
  end

  defp accept(listen, server) do
    case :gen_tcp.accept(listen) do
      {:ok, socket} ->
        pid = spawn(fn -> receive(do: (:go -> serve(socket, false))) end)
        :ok = :gen_tcp.controlling_process(socket, pid)
        GenServer.cast(server, {:conn, pid})
        send(pid, :go)
        accept(listen, server)

      {:error, :closed} ->
        :ok

      {:error, _} ->
        accept(listen, server)
    end
  end

  # Between requests: wait for the next one, or close when the server stops or after 2 idle minutes.
  defp serve(socket, draining) do
    if draining do
      :gen_tcp.close(socket)
    else
      :ok = :inet.setopts(socket, active: :once)

      receive do
        {:http, ^socket, {:http_request, method, target, version}} ->
          :ok = :inet.setopts(socket, active: false)
          handle(socket, method, target, version)

        {:http, ^socket, _other} ->
          :gen_tcp.close(socket)

        {:tcp_closed, ^socket} ->
          :ok

        :drain ->
          :gen_tcp.close(socket)
      after
        120_000 -> :gen_tcp.close(socket)
      end
    end
  end

  # A request has started: read it whole and answer it, whatever happens meanwhile.
  defp handle(socket, method, target, version) do
    with {:ok, headers} <- headers(socket, %{}),
         {:ok, body} <- body(socket, headers) do
      {status, answer} = answer(method, path_of(target), body)
      draining = drain_asked?()
      keep = keep_alive?(version, headers) and not draining
      head = [
        "HTTP/1.1 ", status, "\r\nContent-Type: text/plain\r\nContent-Length: ",
        Integer.to_string(byte_size(answer)), "\r\nX-Version: ", ElixirApp.version(),
        "\r\nConnection: ", if(keep, do: "keep-alive", else: "close"), "\r\n\r\n"
      ]
      payload = if method == :HEAD, do: head, else: [head, answer]

      case :gen_tcp.send(socket, payload) do
        :ok when keep -> serve(socket, false)
        _ -> :gen_tcp.close(socket)
      end
    else
      _ -> :gen_tcp.close(socket)
    end
  end

  defp drain_asked? do
    receive do
      :drain -> true
    after
      0 -> false
    end
  end

  defp headers(socket, acc) do
    case :gen_tcp.recv(socket, 0, 30_000) do
      {:ok, {:http_header, _, name, _, value}} -> headers(socket, Map.put(acc, header_name(name), value))
      {:ok, :http_eoh} -> {:ok, acc}
      other -> {:error, other}
    end
  end

  defp header_name(name) when is_atom(name), do: name |> Atom.to_string() |> String.downcase()
  defp header_name(name), do: String.downcase(name)

  defp body(socket, headers) do
    case Integer.parse(Map.get(headers, "content-length", "0")) do
      {0, _} ->
        {:ok, ""}

      {length, _} when length > 0 ->
        :ok = :inet.setopts(socket, packet: :raw)
        result = :gen_tcp.recv(socket, length, 30_000)
        :ok = :inet.setopts(socket, packet: :http_bin)
        result

      _ ->
        {:error, :bad_length}
    end
  end

  defp keep_alive?({1, 1}, headers), do: String.downcase(Map.get(headers, "connection", "")) != "close"
  defp keep_alive?(_, headers), do: String.downcase(Map.get(headers, "connection", "")) == "keep-alive"

  defp path_of({:abs_path, path}), do: path
  defp path_of(_), do: "/"

  defp answer(:POST, _path, body), do: {"200 OK", body}

  defp answer(method, path, _body) when method in [:GET, :HEAD] do
    case URI.parse(path) do
      %URI{path: p} when p in ["/", "/version"] -> {"200 OK", ElixirApp.version() <> "\n"}
      %URI{path: "/up"} -> {"200 OK", "ok\n"}
      %URI{path: "/slow", query: query} ->
        ms = query |> Kernel.||("") |> URI.decode_query() |> Map.get("ms", "1000") |> Integer.parse()
        ms = case ms do
          {n, _} -> min(max(n, 0), 60_000)
          :error -> 1000
        end
        Process.sleep(ms)
        {"200 OK", ElixirApp.version() <> "\n"}
      _ -> {"404 Not Found", "not found\n"}
    end
  end

  defp answer(_method, _path, _body), do: {"405 Method Not Allowed", "method not allowed\n"}
end
