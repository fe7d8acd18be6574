"""The built-in demo: a local fake OpenAI-compatible upstream and a guided round trip."""
