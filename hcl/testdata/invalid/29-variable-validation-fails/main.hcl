variable "quota_mb" {
  type    = number
  default = 10
  validation {
    condition     = var.quota_mb >= 100
    error_message = "quota_mb must be at least 100."
  }
}
