target "nas" "home" {
  path = "/srv/other"
}
