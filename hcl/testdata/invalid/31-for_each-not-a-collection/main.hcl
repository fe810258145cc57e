source "files" "docs" {
  for_each = 5
  paths    = [each.value]
}
