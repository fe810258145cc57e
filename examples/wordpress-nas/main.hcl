# WordPress sites on several web servers, backed up to one NAS behind a VPN:
# the runner equivalent of the nightly duplicity script (see the README's
# "Migrating from a duplicity backup script"). Every server runs this same
# configuration (keep it in git); each site's role comes from its marker
# file, so a site's primary backs it up and the other servers apply its
# newest snapshot as replicas.
#
#   runner -C examples/wordpress-nas validate -var vhosts=/srv/www/vhosts
#   */15 * * * * root runner -C /etc/runner apply      # from cron

variable "vhosts" {
  type        = string
  default     = "/srv/www/vhosts"
  description = "The vhosts directory: <site>/SITE is a WordPress root."
}

variable "nas_uid" {
  type    = number
  default = 98
}

runner {
  state_dir        = "/var/lib/runner"
  log_file         = "/var/log/runner/runner.log"
  metrics_file     = "/var/lib/node_exporter/textfile/runner.prom"
  parallel         = 2
  inhibit_shutdown = true
}

# The NAS is reached through the office VPN, which must be up for the run.
hook "vpn" "office" {
  up            = ["/usr/local/bin/vpn-toggle", "up"]
  down          = ["/usr/local/bin/vpn-toggle", "down"]
  check         = "nas.office.lan:2049"
  check_timeout = "45s"
}

# The share is mounted for the run only, and checked before anything is
# written: a failed mount must never turn into a backup on the local disk.
target "nas" "office" {
  path  = "/mnt/BackupDesktop/runner"
  mount = "/mnt/BackupDesktop"
  expect {
    uid    = var.nas_uid
    fstype = "nfs4"
  }
  hooks          = [hook.vpn.office]
  min_free_ratio = 10 # free space >= 10 x the largest site quota, as before
  password_file  = "/etc/runner/repository.password"
}

notify "email" "admins" {
  server        = "mail.example.org:587"
  username      = "runner@example.org"
  password_file = "/etc/runner/smtp.password"
  from          = "Backups <runner@example.org>"
  to            = ["admins@example.org"]
  subject       = "[backup {host}] {job}: {status}"
  events        = ["failure", "recovery", "restore", "role_change"]
}

policy "sites" {
  schedule            = "daily 02:30"
  catch_up            = "1d"
  quiet               = ["07:00-22:00"] # never start while people work
  full_every          = "1M"
  keep_daily          = 14
  keep_weekly         = 8
  keep_monthly        = 12
  keep_tags           = ["safety"]
  max_size            = "1000MB" # a site's default quota (max_NAS_space)
  max_forgets_per_run = 1        # one deletion a day, as before
}

source "wordpress" "site" {
  for_each      = wordpress_sites(var.vhosts)
  root          = each.value
  site_dir      = "${var.vhosts}/${each.key}"
  exclude_file  = "/etc/runner/wordpress-excludes"
  certificates  = ["/etc/letsencrypt/live/${each.key}"]
  server_config = ["/etc/nginx/sites-available/${each.key}"]
  maintenance   = true
}

job "site" {
  for_each = source.wordpress.site
  source   = each.value
  target   = target.nas.office
  policy   = policy.sites
  # The old per-site files still work: max_NAS_space (MB), full_backup_freq,
  # and the PRIMARY_IS_<host> marker.
  max_size   = wordpress_quota("${var.vhosts}/${each.key}", "1000MB")
  full_every = wordpress_full_every("${var.vhosts}/${each.key}", "1M")
  role       = wordpress_primary("${var.vhosts}/${each.key}") == hostname() ? "primary" : "replica"
  notify     = [notify.email.admins]
  timeout    = "2h"
}
