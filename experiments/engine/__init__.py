"""The decision engine: decide, record outcomes, join rewards, learn, publish snapshots.

:class:`DecisionEngine` is the one entry point (the HTTP service and simulations both drive it);
the modules behind it each do one job:

====================  ===============================================================
``registry``          stored experiments; the one validated path for status changes
``snapshots``         policy state <-> bytes, the policy factory, the serving policy cache
``planning``          a decision planned in memory: contexts, contact rules, groups
``customer_state``    the customer's observable state, appended to contexts and logged
``decide``            decide / activate: store the planned rows, answer from them
``outcomes``          outcomes stored and attributed to decisions
``reward``            a reward from a decision's outcomes (pure)
``join``              the reward join: rewards written once known
``learning``          rewards folded into the policy, the next snapshot published
``promotion``         safe promotion: a learned snapshot serves once judged on fresh rewards
``transitions``       a reward with its customer's next state, for value-function policies
``learner``           the background learner, one at a time across processes
``guardrails``        the automatic stop: fall back to control on a breach or a bad split
``strategies``        strategy experiments: a customer's strategy per epoch, on the decision path
``epochs``            strategy epochs once closed: their KPI, and the strategy policy learning
``holdout``           stable assignment of customers to the holdout
``clock``             injectable time
====================  ===============================================================
"""

from experiments.engine.decide import DecisionResult
from experiments.engine.facade import DecisionEngine
from experiments.engine.outcomes import OutcomeInput, RecordResult
from experiments.engine.planning import DecisionRequest
from experiments.engine.snapshots import LoadedPolicy

__all__ = [
    "DecisionEngine",
    "DecisionRequest",
    "DecisionResult",
    "LoadedPolicy",
    "OutcomeInput",
    "RecordResult",
]
