defmodule ElixirApp do
  @moduledoc "What the app answers: the deployed version (HK_VERSION, else the release's own)."

  def version do
    System.get_env("HK_VERSION") || to_string(Application.spec(:elixir_app, :vsn))
  end
end
