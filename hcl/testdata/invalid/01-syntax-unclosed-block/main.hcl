target "nas" "home" {
  path = "/srv/backup"
