target "nas" "home" {
  path = nas_path("home")
}
