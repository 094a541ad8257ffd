defmodule ElixirApp.Release do
  @moduledoc """
  Tasks run by `bin/elixir_app eval` (a fresh VM of the release, not the running node).
  `migrate/0` stands for a database migration: it appends a line to `migrations.log` in the app's
  storage folder (`HK_STORAGE_DATA`), and fails while that folder holds a file `fail-migration`
  (how a broken migration is shown).
  """

  def migrate do
    dir = System.get_env("HK_STORAGE_DATA") || raise "HK_STORAGE_DATA is not set"

    if File.exists?(Path.join(dir, "fail-migration")) do
      IO.puts(:stderr, "migration refused: #{dir}/fail-migration is there")
      raise "migration failed on purpose"
    end

    line = "#{ElixirApp.version()} #{System.get_env("GREETING", "")}\n"
    File.write!(Path.join(dir, "migrations.log"), line, [:append])
    IO.puts("migrated #{String.trim(line)}")
  end
end
