"""Plain ``nn.Module`` nets; nothing here knows about Lightning."""
