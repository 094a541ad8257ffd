defmodule ElixirApp.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    port = String.to_integer(System.get_env("PORT", "4000"))
    # A worker role runs the same release without HTTP (ELIXIR_APP_HTTP=false).
    children =
      if System.get_env("ELIXIR_APP_HTTP", "true") == "false" do
        [ElixirApp.Worker]
      else
        # Given time to finish what is in flight when the release stops (SIGTERM).
        [Supervisor.child_spec({ElixirApp.Http, port: port}, shutdown: 30_000)]
      end

    Supervisor.start_link(children, strategy: :one_for_one, name: ElixirApp.Supervisor)
  end
end
