target "nas" "home" {
  path = "/mnt/nas/runner"
  expect {
    gid = 401
    uid = -1
  }
}
