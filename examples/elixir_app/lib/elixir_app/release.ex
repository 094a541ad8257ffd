defmodule ElixirApp.Release do
  @moduledoc """
  Tasks run by `bin/elixir_app eval` (a fresh VM of the release, not the running node).
  `migrate/0` stands for a database migration: it appends a line to `migrations.log` in the app's
  storage folder (`HK_STORAGE_DATA`), and fails when `FAIL_MIGRATION` is set.
  """

  def migrate do
    if System.get_env("FAIL_MIGRATION") not in [nil, ""] do
      IO.puts(:stderr, "migration refused: FAIL_MIGRATION is set")
      raise "migration failed on purpose"
    end

    dir = System.get_env("HK_STORAGE_DATA") || raise "HK_STORAGE_DATA is not set"
    line = "#{ElixirApp.version()} #{System.get_env("GREETING", "")}\n"
    File.write!(Path.join(dir, "migrations.log"), line, [:append])
    IO.puts("migrated #{String.trim(line)}")
  end
end
