defmodule ElixirApp.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    port = String.to_integer(System.get_env("PORT", "4000"))
    children = [
      # Given time to finish what is in flight when the release stops (SIGTERM).
      Supervisor.child_spec({ElixirApp.Http, port: port}, shutdown: 30_000)
    ]
    Supervisor.start_link(children, strategy: :one_for_one, name: ElixirApp.Supervisor)
  end
end
