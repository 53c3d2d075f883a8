"""The runtime phase: plans into engines, engines into execution contexts."""
