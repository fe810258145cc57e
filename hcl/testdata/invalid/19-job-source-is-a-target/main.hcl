target "nas" "home" {
  path = "/srv/backup"
}

source "files" "docs" {
  paths = ["/srv/docs"]
}

job "docs" {
  source = target.nas.home
  target = target.nas.home
}
