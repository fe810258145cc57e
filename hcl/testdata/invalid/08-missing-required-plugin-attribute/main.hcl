source "files" "docs" {
  exclude = ["*.tmp"]
}
