runner {
  state_dir = "/var/lib/runner-test"
  parallel  = 3
}

variable "nas_uid" {
  type    = number
  default = 98
}

variable "vhosts" {
  type = string
}

variable "quota" {
  type    = string
  default = "1000MB"
  validation {
    condition     = can(bytes(var.quota))
    error_message = "quota must be a size such as 1000MB."
  }
}

locals {
  primary_marker = "PRIMARY_IS_${hostname()}"
}
