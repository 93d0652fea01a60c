"""The wire layer: every record format Railyard reads or writes on Kafka (Avro, the
single-object and container encodings, JSON CloudEvents), as pure bytes-in/bytes-out
codecs. Imports only the domain."""
