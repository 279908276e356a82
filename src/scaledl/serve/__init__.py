"""The model server: Open Inference Protocol (V2) over HTTP, batching, versions, auth, metrics."""
