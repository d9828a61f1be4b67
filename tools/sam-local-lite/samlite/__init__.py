"""samlite: the functions of a SAM template served on loopback, without Docker.

``samlite serve`` reads the SAM template and serves every function it declares, the way AWS
would invoke it:

- :mod:`.cfn` loads a CloudFormation/SAM template (short-form tags), resolves the intrinsic
  functions that need no deployed stack, and creates its DynamoDB tables on any endpoint.
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
- :mod:`.stack` starts and stops all of it on a DynamoDB Local (given, or started by the
  embedding project's :class:`~.stack.DynamoDBStarter`); :mod:`.cli` is the command;
  :mod:`.testing` runs a stack in a subprocess for tests.

See the package's README.md for what is emulated and what is not.
"""

from .stack import DynamoDBStarter, LocalStack, StackConfig, StackError, serve
from .template import StackModel, read_stack

__all__ = [
    "DynamoDBStarter",
    "LocalStack",
    "StackConfig",
    "StackError",
    "StackModel",
    "read_stack",
    "serve",
]
