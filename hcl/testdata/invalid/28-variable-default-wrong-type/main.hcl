variable "nas_uid" {
  type    = number
  default = "ninety-eight"
}
