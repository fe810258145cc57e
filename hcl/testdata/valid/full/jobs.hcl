hook "exec" "vpn" {
  before = ["/usr/local/bin/vpn-toggle", "up"]
  after  = ["/usr/local/bin/vpn-toggle", "down"]
}

hook "exec" "notify" {
  after = ["/bin/true"]
}

target "nas" "home" {
  path           = "/mnt/nas/runner"
  mount          = "/mnt/nas"
  hooks          = [hook.exec.vpn]
  min_free_ratio = 10
  expect {
    uid = var.nas_uid
    gid = 401
  }
}

policy "sites" {
  schedule            = "daily 03:00"
  catch_up            = "3d"
  full_every          = "1M"
  keep_daily          = 14
  keep_weekly         = 8
  keep_monthly        = 12
  max_size            = var.quota
  max_forgets_per_run = 1
  quiet               = ["22:00-06:00"]
}

source "files" "site" {
  for_each = list_sites(var.vhosts)
  paths    = [each.value]
  root     = each.value
}

notify "email" "admin" {
  to = ["admin@example.org"]
}

job "site" {
  for_each = source.files.site
  source   = each.value
  target   = target.nas.home
  policy   = policy.sites
  max_size = each.key == "shop" ? "500MB" : "1000MB"
  role     = fileexists("${each.value.root}/${local.primary_marker}") ? "primary" : "replica"
  hooks    = [hook.exec.notify]
  notify   = [notify.email.admin]
}
