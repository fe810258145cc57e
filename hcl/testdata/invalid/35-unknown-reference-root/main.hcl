target "nas" "home" {
  path = "/srv/backup"
}

source "files" "docs" {
  paths = ["/srv/docs"]
}

job "docs" {
  source = sauce.files.docs
  target = target.nas.home
}
