source "files" "site" {
  for_each = ["a", "b", "a"]
  paths    = ["/srv/${each.value}"]
}
