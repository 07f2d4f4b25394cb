"""The analytics core: windows, features, rules, models. No network code, no protocol knowledge."""
