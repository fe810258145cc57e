variable "nas_host" {
  type = string
}
