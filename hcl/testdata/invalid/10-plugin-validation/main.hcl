target "nas" "home" {
  path = "backup"
}
