defmodule ElixirApp.Worker do
  @moduledoc "What a worker role runs: a process that says it is alive once a minute."
  use GenServer
  require Logger

  def start_link(_), do: GenServer.start_link(__MODULE__, :ok, name: __MODULE__)

  @impl true
  def init(:ok) do
    Logger.info("elixir_app #{ElixirApp.version()} worker started")
    {:ok, _} = :timer.send_interval(60_000, :tick)
    {:ok, 0}
  end

  @impl true
  def handle_info(:tick, n) do
    Logger.info("worker alive, #{n + 1} minute(s)")
    {:noreply, n + 1}
  end
end
