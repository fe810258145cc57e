retention = 14
target "nas" "home" {
  path = "/srv/backup"
}

source "files" "docs" {
  paths = ["/srv/docs"]
}
