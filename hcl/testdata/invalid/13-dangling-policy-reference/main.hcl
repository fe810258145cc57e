target "nas" "home" {
  path = "/srv/backup"
}

source "files" "docs" {
  paths = ["/srv/docs"]
}

policy "nightly" {
  keep_daily = 7
}

job "docs" {
  source = source.files.docs
  target = target.nas.home
  policy = policy.nighty
}
