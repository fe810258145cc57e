source "files" "site" {
  for_each = list_sites("/nonexistent/vhosts")
  paths    = [each.value]
}
