source "filez" "docs" {
  paths = ["/srv/docs"]
}
