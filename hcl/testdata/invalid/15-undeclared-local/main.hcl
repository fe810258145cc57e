locals {
  root = "/srv"
}

target "nas" "home" {
  path = local.rot
}
