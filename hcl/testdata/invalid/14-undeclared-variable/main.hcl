target "nas" "home" {
  path = var.nas_path
}
