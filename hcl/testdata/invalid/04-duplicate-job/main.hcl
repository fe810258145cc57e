target "nas" "home" {
  path = "/srv/backup"
}

source "files" "docs" {
  paths = ["/srv/docs"]
}

job "docs" {
  source = source.files.docs
  target = target.nas.home
}

job "docs" {
  source = source.files.docs
  target = target.nas.home
}
