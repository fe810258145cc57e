target "nas" "home" {
  path = env("NAS_PATH")
}
