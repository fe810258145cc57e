plugin "postgres" {
  path   = "/usr/local/lib/runner/runner-plugin-postgres"
  sha256 = "9f2c"
}
