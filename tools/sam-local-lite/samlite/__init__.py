"""The local stack: the application of ``template.yaml`` served on loopback, without Docker.

``loyalty local serve`` (what ``make run`` runs) reads the SAM template and serves every function
it declares, the way AWS would invoke it:

- :mod:`.template` reads the template into a :class:`~.template.StackModel`: functions, HTTP
  routes and authorizers, EventBridge rules and schedules, SQS queues, stream and queue event
  source mappings, with intrinsic functions resolved to local names and ARNs.
- :mod:`.functions` runs each function in its own Python worker process (one per execution
  environment: its own environment variables, its own module cache, its own timeout).
- :mod:`.http_api` is API Gateway's HTTP API (payload 2.0, JWT and IAM authorisation, with
  :mod:`.auth`); :mod:`.bus` is EventBridge (PutEvents, rules, patterns from :mod:`.patterns`,
  Lambda's asynchronous invocation with retries and destinations); :mod:`.queues` is SQS (an
  AWS-JSON endpoint, visibility, redrive to a DLQ, the Lambda poller with partial batch
  failures); :mod:`.streams` reads DynamoDB Local's streams for stream-triggered functions;
  :mod:`.schedules` fires ``rate``/``cron`` schedules.
- :mod:`.stack` starts and stops all of it on DynamoDB Local; :mod:`.demo` feeds it a synthetic
  marketplace.

See docs/local-stack.md for what is emulated and what is not.
"""
