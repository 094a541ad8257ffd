defmodule ElixirApp.MixProject do
  use Mix.Project

  # A dependency-free app: HTTP on OTP's :gen_tcp, so `mix release` builds it offline.
  def project do
    [
      app: :elixir_app,
      version: "0.1.0",
      elixir: "~> 1.14",
      start_permanent: Mix.env() == :prod,
      deps: [],
      releases: [elixir_app: [include_executables_for: [:unix]]]
    ]
  end

  def application do
    [extra_applications: [:logger], mod: {ElixirApp.Application, []}]
  end
end
