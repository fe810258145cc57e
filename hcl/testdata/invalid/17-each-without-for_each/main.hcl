source "files" "docs" {
  paths = [each.value]
}
