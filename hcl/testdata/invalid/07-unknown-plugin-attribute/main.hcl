source "files" "docs" {
  paths   = ["/srv/docs"]
  exlcude = ["*.tmp"]
}
