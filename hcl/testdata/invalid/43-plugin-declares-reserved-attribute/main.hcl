target "vault" "v" {
  path = "/srv/vault"
}
