# A files example: back up Debian's documentation tree and two /etc
# directories to a local directory standing in for a NAS. `make demo-files`
# validates it, creates the repository, plans, backs up, lists the
# snapshots, restores one and compares it with the original.

runner {
  state_dir = var.state_dir
  parallel  = 2
}

variable "state_dir" {
  type    = string
  default = "/tmp/runner-files-demo/state"
}

variable "nas_dir" {
  type        = string
  default     = "/tmp/runner-files-demo/nas"
  description = "Where the demo repository lives; a NAS mount point in real life."
  validation {
    condition     = startswith(var.nas_dir, "/")
    error_message = "nas_dir must be an absolute path."
  }
}

locals {
  docs = "/usr/share/doc"
}

hook "exec" "announce" {
  before  = ["/bin/echo", "starting backup"]
  always  = ["/bin/echo", "backup finished"]
  timeout = "1m"
}

target "nas" "local" {
  path        = var.nas_dir
  create_path = true
}

policy "nightly" {
  schedule    = "daily 03:00"
  catch_up    = "3d"
  keep_daily  = 14
  keep_weekly = 8
  max_size    = "1000MB"
}

source "files" "docs" {
  paths   = [local.docs]
  exclude = ["*.gz", "**/changelog*"]
}

source "files" "settings" {
  for_each = toset(["/etc/apt", "/etc/ssh"])
  paths    = [each.value]
}

job "docs" {
  source = source.files.docs
  target = target.nas.local
  policy = policy.nightly
  hooks  = [hook.exec.announce]
}

job "settings" {
  for_each = source.files.settings
  source   = each.value
  target   = target.nas.local
  policy   = policy.nightly
}
