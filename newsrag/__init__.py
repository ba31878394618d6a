"""The `newsrag` command and the integrations around the library (`rag`): kept apart so that
`import rag` pulls in neither the HTTP server nor the evaluation harness."""
