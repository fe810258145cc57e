target "nas" "t" {
  path = "/srv/backup"
}
source "files" "s" {
  paths = ["/etc"]
}
job "j" {
  source   = source.files.s
  target   = target.nas.t
  max_size = "100MB"
}
