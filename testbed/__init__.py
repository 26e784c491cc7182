"""What the tests and the benchmarks both run: real `parley serve`/`parley worker` processes
(`processes`), a GraphQL client for them (`client`), and local servers that speak the LLM
providers' wire protocols (`llm_fakes`). Imports nothing from `tests` or pytest, so the
benchmarks run on an install without the dev tools."""
