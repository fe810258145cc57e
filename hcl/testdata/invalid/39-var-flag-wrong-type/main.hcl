variable "nas_uid" {
  type    = number
  default = 98
}
