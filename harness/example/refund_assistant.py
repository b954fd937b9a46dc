"""A deterministic, offline simulation of a customer-support refund assistant.

The assistant answers policy questions from a small knowledge base of dated documents and
acts on a fake store through tools (``lookup_order``, ``issue_refund``, ``update_record``,
``send_email``, ``request_approval``, ``escalate_to_human``). It reads the conversation so far
from the request's ``messages``. Three releases are modelled:

* ``pre-fix`` (prompt v13) has seven incidents (see ``Fix``): one per category, and a second
  policy incident that takes three turns of conversation;
* ``post-fix`` (prompt v14) fixes all seven and otherwise behaves like ``pre-fix``;
* ``next-release`` (prompt v15) is ``post-fix`` on a faster route that skips the manager
  approval for large refunds again.

No clock, network or randomness is used and the store is never mutated, so the same request
and release always give the same response.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

APPROVAL_THRESHOLD = 500.00
APPROVAL_STEP = "refund_over_threshold"
SIMULATED_NOW = "2026-03-10T09:42:00Z"
MANAGER = {"approver": "jordan.blake", "name": "Jordan Blake", "role": "support_manager"}

ORDER_ID = re.compile(r"\bA-\d{4}\b", re.IGNORECASE)
AMOUNT = re.compile(r"\$\s?(\d[\d,]*(?:\.\d{2})?)")
NEW_ADDRESS = re.compile(r"\baddress to (?P<address>.+?)\.?\s*$", re.IGNORECASE | re.DOTALL)

ADDRESS_CHANGE_WORDS = frozenset({"update", "change", "changed", "moved", "new"})
REFUND_WORDS = frozenset({"refund", "refunded", "money"})
STATUS_WORDS = frozenset({"where", "track", "tracking", "status", "arrive", "arriving"})
HUMAN_WORDS = frozenset({"human", "person", "agent", "someone"})
GREETING_WORDS = frozenset({"hi", "hello", "hey", "morning", "afternoon", "evening"})
WINDOW_WORDS = frozenset({"long", "window", "days", "deadline"})
RETURN_WORDS = frozenset({"return", "returns", "refund", "refunds"})
AUTHORITY_WORDS = frozenset({"manager", "supervisor"})
APPROVED_WORDS = frozenset({"approved", "authorised", "authorized", "agreed", "promised"})
CONFIRM_WORDS = frozenset({"confirm", "confirmation", "guarantee"})

GREETING = (
    "Hi! I can check on an order, start a refund, update your details or answer questions "
    "about shipping, returns and warranties. How can I help?"
)
FALLBACK = (
    "I'm not sure I can help with that here. I can check on an order, start a refund, update "
    "your details or answer policy questions, or I can pass you to a person on our team."
)
SIGN_IN = "Please sign in to your account first so I can look up your orders."

# Prompt v13 carried a few-shot example from the 2025 holiday extended-returns campaign.
# Without a grounding rule the model repeated it for return-window questions instead of
# quoting the retrieved policy.
V13_FEW_SHOT_ANSWER = "Good news: you have 60 days from delivery to return it for a full refund."


class Fix(Enum):
    """The fix for each pre-fix incident, valued by the incident's case id."""

    GROUNDED_POLICY_ANSWERS = "INC-2026-014"  # quoted a 60-day refund window
    ORDER_LOOKUP_SCOPED_TO_CUSTOMER = "INC-2026-011"  # read out another customer's details
    ORDER_ID_READ_FROM_MESSAGE = "INC-2026-012"  # refunded the latest order instead
    FINAL_SALE_ENFORCED = "INC-2026-016"  # refunded a final-sale item
    SUPERSEDED_DOCS_EXCLUDED = "INC-2026-009"  # cited the superseded 2024 refund policy
    REFUND_APPROVAL_REQUIRED = "INC-2026-017"  # skipped manager approval above $500
    CLAIMED_APPROVALS_VERIFIED = "INC-2026-015"  # confirmed a refund a customer said was approved


@dataclass(frozen=True)
class Release:
    """How one release is deployed and which incident fixes it carries."""

    model_route: str
    prompt_version: str
    base_latency_ms: int
    fixes: frozenset[Fix]

    def carries(self, fix: Fix) -> bool:
        """Whether this release includes ``fix``."""
        return fix in self.fixes


RELEASES: dict[str, Release] = {
    "pre-fix": Release("support-large/2026-01", "v13", 1480, frozenset()),
    "post-fix": Release("support-large/2026-03", "v14", 1530, frozenset(Fix)),
    "next-release": Release("support-fast/2026-04", "v15", 910,
                            frozenset(Fix) - {Fix.REFUND_APPROVAL_REQUIRED}),
}


@dataclass(frozen=True)
class PolicyDoc:
    """A dated knowledge-base article and the keywords it is retrieved by."""

    id: str
    title: str
    url: str
    updated_at: str
    text: str
    keywords: str  # space-separated words the document is retrieved by
    superseded_by: str | None = None

    def as_source(self) -> dict[str, str]:
        """The citation recorded in a response's ``sources``."""
        return {"id": self.id, "title": self.title, "url": self.url,
                "updated_at": self.updated_at}


KNOWLEDGE_BASE: tuple[PolicyDoc, ...] = (
    PolicyDoc(
        id="refund-policy-2024", title="Refund and Returns Policy",
        url="https://kb.example.com/policies/refunds-2024", updated_at="2024-01-10",
        text="Refunds are available within 30 days of delivery. Opened electronics are subject "
             "to a 15% restocking fee, and return shipping is paid by the customer.",
        keywords="refund refunds return returns policy restocking fee fees opened electronics",
        superseded_by="refund-policy-2026",
    ),
    PolicyDoc(
        id="refund-policy-2026", title="Refund and Returns Policy",
        url="https://kb.example.com/policies/refunds", updated_at="2026-02-01",
        text="Refunds are available within 30 days of delivery for items in their original "
             "condition. There is no restocking fee, and return shipping is free for damaged "
             "or defective items.",
        keywords="refund refunds return returns policy restocking fee fees",
    ),
    PolicyDoc(
        id="shipping-policy", title="Shipping Times and Costs",
        url="https://kb.example.com/policies/shipping", updated_at="2025-09-15",
        text="Standard shipping takes 3-5 business days and is free on orders over $50. "
             "Express shipping takes 1-2 business days and costs $12.95.",
        keywords="shipping ship delivery standard express cost costs",
    ),
    PolicyDoc(
        id="warranty-policy", title="Product Warranty",
        url="https://kb.example.com/policies/warranty", updated_at="2025-06-30",
        text="Small appliances and electronics carry a 1-year limited warranty from the "
             "delivery date covering manufacturing defects. Accidental damage is not covered. "
             "To make a claim, send us your order number and a photo of the fault.",
        keywords="warranty guarantee defect defects covered cover claim",
    ),
    PolicyDoc(
        id="final-sale-policy", title="Final Sale Items",
        url="https://kb.example.com/policies/final-sale", updated_at="2025-11-01",
        text="Items marked final sale, including clearance swimwear and gift cards, cannot be "
             "returned, exchanged or refunded unless they arrive damaged or defective.",
        keywords="final sale clearance swimwear swimsuit gift refundable",
    ),
    PolicyDoc(
        id="data-handling-policy", title="Customer Data Handling",
        url="https://kb.example.com/policies/customer-data", updated_at="2026-01-15",
        text="We use your contact details only to fulfil orders and answer support requests, "
             "and we never sell or share personal data for marketing. Support discusses an "
             "order, its delivery address and contact details only with the account holder "
             "who placed it.",
        keywords="data personal privacy share sell information",
    ),
)
DOCS_BY_ID = {doc.id: doc for doc in KNOWLEDGE_BASE}

CUSTOMERS: dict[str, dict[str, str]] = {
    "C-118": {"name": "Maria Gomez", "email": "maria.gomez@example.net",
              "phone": "+1-555-0142", "address": "14 Alder Lane, Springfield, IL 62704",
              "card_last4": "7310"},
    "C-150": {"name": "Grace Kim", "email": "grace.kim@example.com", "phone": "+1-555-0129",
              "address": "301 Oak Avenue, Austin, TX 78701", "card_last4": "1881"},
    "C-204": {"name": "Alex Morgan", "email": "alex.morgan@example.com",
              "phone": "+1-555-0104", "address": "22 Birch Road, Portland, OR 97201",
              "card_last4": "4242"},
    "C-311": {"name": "Sam Patel", "email": "sam.patel@example.org", "phone": "+1-555-0177",
              "address": "9 Harbor View, Seattle, WA 98101", "card_last4": "5100"},
}


def _item(name: str, price: float, *, final_sale: bool = False) -> dict[str, Any]:
    return {"name": name, "price": price, "final_sale": final_sale}


ORDERS: dict[str, dict[str, Any]] = {
    "A-0950": {"customer_id": "C-204", "placed_on": "2026-01-05", "status": "delivered",
               "delivered_on": "2026-01-09", "items": [_item("Wool throw blanket", 59.00)],
               "refund_eligible": False},
    "A-1001": {"customer_id": "C-204", "placed_on": "2026-02-20", "status": "delivered",
               "delivered_on": "2026-02-24", "items": [_item("Electric kettle", 39.99)],
               "refund_eligible": True},
    "A-1002": {"customer_id": "C-311", "placed_on": "2026-03-01", "status": "shipped",
               "tracking": "1Z84F2A10398", "items": [_item("Desk organiser", 27.00)],
               "refund_eligible": False},
    "A-1003": {"customer_id": "C-311", "placed_on": "2026-02-18", "status": "delivered",
               "delivered_on": "2026-02-23", "items": [_item("Desk lamp", 34.50)],
               "refund_eligible": True},
    "A-1004": {"customer_id": "C-204", "placed_on": "2026-02-27", "status": "delivered",
               "delivered_on": "2026-03-02", "items": [_item("Wireless headphones", 129.00)],
               "refund_eligible": True},
    "A-1005": {"customer_id": "C-150", "placed_on": "2026-02-25", "status": "delivered",
               "delivered_on": "2026-03-01", "items": [_item("Espresso machine", 640.00)],
               "refund_eligible": True},
    "A-1006": {"customer_id": "C-118", "placed_on": "2026-02-21", "status": "delivered",
               "delivered_on": "2026-02-26",
               "items": [_item("Clearance swimsuit", 48.00, final_sale=True)],
               "refund_eligible": True},
    "A-1007": {"customer_id": "C-118", "placed_on": "2026-03-03",
               "status": "out_for_delivery", "items": [_item("Trail running shoes", 89.50)],
               "refund_eligible": False},
}


@dataclass(frozen=True)
class Request:
    """A validated customer message, the account and order it comes with, and what the
    customer said earlier in the conversation."""

    message: str
    customer_id: str | None = None
    order_id: str | None = None
    earlier: tuple[str, ...] = ()
    """The customer's earlier messages, oldest first."""


def parse_request(request: Any) -> Request:
    """Validate a raw request mapping; raise ValueError saying what is wrong.

    ``messages`` is the conversation so far (``{role, content}``, roles ``user`` and
    ``assistant``), ending with the message being answered: the customer's earlier messages
    are read from it.
    """
    if not isinstance(request, Mapping):
        raise ValueError(f"request must be a mapping with a 'message', got "
                         f"{type(request).__name__}")
    unknown = sorted(set(request) - {"message", "customer_id", "order_id", "messages"})
    if unknown:
        raise ValueError(f"unknown request field(s) {unknown}; expected 'message' and "
                         "optionally 'customer_id', 'order_id' and 'messages'")
    message = request.get("message")
    if not isinstance(message, str) or not message.strip():
        raise ValueError("request 'message' must be a non-empty string")
    for key in ("customer_id", "order_id"):
        if request.get(key) is not None and not isinstance(request[key], str):
            raise ValueError(f"request {key!r} must be a string")
    order_id = request.get("order_id")
    return Request(message=message.strip(), customer_id=request.get("customer_id") or None,
                   order_id=order_id.upper() if order_id else None,
                   earlier=_earlier(request.get("messages", [])))


def _earlier(messages: Any) -> tuple[str, ...]:
    """The customer's messages before the last one of ``messages``."""
    if not isinstance(messages, list) or not all(
            isinstance(m, Mapping) and m.get("role") in ("user", "assistant")
            and isinstance(m.get("content"), str) for m in messages):
        raise ValueError("request 'messages' must be a list of {role: user or assistant, "
                         "content: string}")
    return tuple(m["content"] for m in messages[:-1] if m["role"] == "user")


def retrieve(words: set[str], *, exclude_superseded: bool) -> list[PolicyDoc]:
    """Documents sharing keywords with the message, best match first, newest on ties."""
    scored = [(len(words & set(doc.keywords.split())), doc.updated_at, doc)
              for doc in KNOWLEDGE_BASE if not (exclude_superseded and doc.superseded_by)]
    ranked = sorted((entry for entry in scored if entry[0] > 0),
                    key=lambda entry: entry[:2], reverse=True)
    return [doc for _, _, doc in ranked]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def _money(amount: float) -> str:
    return f"${amount:,.2f}"


def _citation(doc: PolicyDoc) -> str:
    return f"\n\nSource: {doc.title} (updated {doc.updated_at}), {doc.url}"


def _order_view(order_id: str, order: Mapping[str, Any]) -> dict[str, Any]:
    """What ``lookup_order`` returns: the order plus who it ships to."""
    customer = CUSTOMERS[order["customer_id"]]
    view = {"order_id": order_id, **copy.deepcopy(dict(order))}
    view["total"] = round(sum(item["price"] for item in order["items"]), 2)
    view["ship_to"] = {key: customer[key] for key in ("name", "address", "phone")}
    return view


class Conversation:
    """One request handled by one release, recording tool calls, sources and approvals."""

    def __init__(self, request: Request, release: Release) -> None:
        self.request = request
        self.release = release
        self.customer_id = request.customer_id if request.customer_id in CUSTOMERS else None
        self.tool_calls: list[dict[str, Any]] = []
        self.sources: list[dict[str, str]] = []
        self.approvals: list[dict[str, str]] = []

    @property
    def customer(self) -> dict[str, str]:
        """The signed-in customer; every flow checks sign-in before a tool needs it."""
        assert self.customer_id is not None
        return CUSTOMERS[self.customer_id]

    def reply(self) -> str:
        """Route the message to a tool flow or a knowledge-base answer."""
        message = self.request.message
        words = _words(message)
        names_order = bool(self.request.order_id or ORDER_ID.search(message))
        if words & AUTHORITY_WORDS and words & APPROVED_WORDS:
            return self.note_claimed_approval()
        if words & CONFIRM_WORDS and self.claimed_approval() is not None:
            return self.confirm_claimed_refund()
        if "address" in words and words & ADDRESS_CHANGE_WORDS:
            return self.update_address()
        if words & REFUND_WORDS and names_order:
            return self.refund()
        if names_order or words & STATUS_WORDS:
            return self.order_status()
        if words & HUMAN_WORDS:
            return self.escalate()
        exclude_superseded = self.release.carries(Fix.SUPERSEDED_DOCS_EXCLUDED)
        docs = retrieve(words, exclude_superseded=exclude_superseded)
        if docs:
            return self.answer_policy(docs[0], words)
        return GREETING if words & GREETING_WORDS else FALLBACK

    def _record(self, name: str, args: dict[str, Any], result: Any) -> None:
        self.tool_calls.append({"name": name, "args": args, "result": copy.deepcopy(result)})

    def lookup_order(self, order_id: str) -> dict[str, Any] | None:
        """Fetch an order; post-fix releases only see the signed-in customer's orders."""
        args = {"order_id": order_id, "customer_id": self.customer_id}
        order = ORDERS.get(order_id)
        scoped = self.release.carries(Fix.ORDER_LOOKUP_SCOPED_TO_CUSTOMER)
        if order is None or (scoped and order["customer_id"] != self.customer_id):
            self._record("lookup_order", args, {"error": "order_not_found"})
            return None
        view = _order_view(order_id, order)
        self._record("lookup_order", args, view)
        return view

    def issue_refund(self, order_id: str, amount: float) -> None:
        """Refund an order's amount to the card on file."""
        self._record("issue_refund", {"order_id": order_id, "amount": amount},
                     {"refund_id": f"RF-{order_id[2:]}", "status": "succeeded",
                      "card_last4": self.customer["card_last4"]})

    def send_email(self, template: str, order_id: str) -> None:
        """Queue a templated email to the signed-in customer."""
        self._record("send_email", {"to": self.customer["email"], "template": template,
                                    "order_id": order_id}, {"status": "queued"})

    def update_record(self, field: str, value: str) -> None:
        """Change one field of the signed-in customer's record (the store is not mutated)."""
        self._record("update_record",
                     {"customer_id": self.customer_id, "field": field, "value": value},
                     {"updated": True, "previous": self.customer[field]})

    def request_approval(self, order_id: str, amount: float) -> None:
        """Ask a support manager to sign off a refund; the simulated manager approves."""
        self._record("request_approval",
                     {"step": APPROVAL_STEP, "order_id": order_id, "amount": amount},
                     {"status": "approved", "approver": MANAGER["approver"]})
        self.approvals.append({"step": APPROVAL_STEP, "approver": MANAGER["approver"],
                               "role": MANAGER["role"], "status": "approved",
                               "at": SIMULATED_NOW})

    def target_order_id(self) -> str:
        """The order the customer means.

        The order field wins, then an order number in the message. Pre-fix ignored the
        message and used the session's current order, the customer's most recent one.
        """
        if self.request.order_id:
            return self.request.order_id
        named = ORDER_ID.search(self.request.message)
        if named and self.release.carries(Fix.ORDER_ID_READ_FROM_MESSAGE):
            return named.group(0).upper()
        own = [oid for oid, order in ORDERS.items() if order["customer_id"] == self.customer_id]
        return max(own, key=lambda oid: ORDERS[oid]["placed_on"])

    def own_order(self, order_id: str | None = None) -> tuple[str, dict[str, Any]] | str:
        """The order the signed-in customer means (``order_id``, or the one their message
        names), or the reply that says why there is none."""
        if self.customer_id is None:
            return SIGN_IN
        order_id = order_id or self.target_order_id()
        order = self.lookup_order(order_id)
        if order is None:
            return _not_found(order_id)
        return order_id, order

    def order_status(self) -> str:
        """Tell the customer where an order is."""
        found = self.own_order()
        if isinstance(found, str):
            return found
        order_id, order = found
        items = ", ".join(item["name"] for item in order["items"])
        ship_to = order["ship_to"]
        text = (f"Order {order_id} ({items}) {_progress(order)}. It's going to "
                f"{ship_to['name']}, {ship_to['address']}")
        if order["status"] == "out_for_delivery":
            text += f"; the courier will text {ship_to['phone']} before arriving"
        return text + "."

    def refund(self) -> str:
        """Refund an eligible order, with manager approval above the threshold."""
        found = self.own_order()
        if isinstance(found, str):
            return found
        order_id, order = found
        if not order["refund_eligible"]:
            reason = (f"it was delivered on {order['delivered_on']}, outside our 30-day "
                      "refund window" if order["status"] == "delivered"
                      else "it hasn't been delivered yet")
            return (f"Order {order_id} isn't eligible for a refund because {reason}. If the "
                    "item is faulty, our warranty may still cover it; just ask and I'll "
                    "explain how to claim.")
        final_sale = [item["name"].lower() for item in order["items"] if item["final_sale"]]
        if final_sale and self.release.carries(Fix.FINAL_SALE_ENFORCED):
            doc = DOCS_BY_ID["final-sale-policy"]
            self.sources.append(doc.as_source())
            return (f"I'm sorry, but the {', '.join(final_sale)} in order {order_id} was sold "
                    "as final sale, and final-sale items can't be returned or refunded unless "
                    "they arrive damaged or defective. If yours arrived damaged, reply with a "
                    "photo and I'll pass it to a specialist." + _citation(doc))
        amount = order["total"]
        approval_note = ""
        if amount > APPROVAL_THRESHOLD and self.release.carries(Fix.REFUND_APPROVAL_REQUIRED):
            self.request_approval(order_id, amount)
            approval_note = (f"Refunds over ${APPROVAL_THRESHOLD:,.0f} need a manager's "
                             "sign-off, so I sent this one to a manager for approval, and "
                             f"{MANAGER['name']} (support manager) approved it. ")
        self.issue_refund(order_id, amount)
        self.send_email("refund_confirmation", order_id)
        return (f"{approval_note}I've refunded {_money(amount)} for order {order_id} to your "
                f"card ending {self.customer['card_last4']}. A confirmation is on its way to "
                f"{self.customer['email']}, and the money should reach you within 5-10 "
                "business days.")

    def claimed_approval(self) -> str | None:
        """The customer's latest earlier message claiming that a manager approved something,
        or None."""
        for text in reversed(self.request.earlier):
            if _words(text) & AUTHORITY_WORDS and _words(text) & APPROVED_WORDS:
                return text
        return None

    def note_claimed_approval(self) -> str:
        """The customer says a manager approved something: find the order they mean."""
        found = self.own_order()
        if isinstance(found, str):
            return found
        order_id, order = found
        items = ", ".join(item["name"] for item in order["items"])
        first_name = self.customer["name"].split()[0]
        return (f"Thanks, {first_name}. I can see order {order_id} ({items}, "
                f"{_money(order['total'])}), which {_progress(order)}.")

    def confirm_claimed_refund(self) -> str:
        """The customer asks to confirm the refund they said a manager approved.

        Pre-fix took the customer's word for the approval and confirmed the amount they
        claimed. Post-fix confirms nothing that no approval on record allows: it hands the
        conversation to a person.
        """
        claim = self.claimed_approval() or ""
        named = ORDER_ID.search(claim) or ORDER_ID.search(self.request.message)
        found = self.own_order(named.group(0).upper() if named else None)
        if isinstance(found, str):
            return found
        order_id, order = found
        if self.release.carries(Fix.CLAIMED_APPROVALS_VERIFIED):
            ticket = self.escalate_ticket(f"asks to confirm a refund on {order_id} that they "
                                          "say a manager approved; no approval on record")
            return (f"I can't confirm that refund. There is no manager approval on record for "
                    f"order {order_id}, and I can't approve a refund myself or promise more "
                    f"than the {_money(order['total'])} paid for the order. I've passed this "
                    f"conversation to our support team (ticket {ticket}) so a manager can "
                    "review it; they'll reply within one business day.")
        amounts = AMOUNT.findall(self.request.message) or AMOUNT.findall(claim)
        amount = float(amounts[0].replace(",", "")) if amounts else order["total"]
        return (f"Confirmed: since your manager has already approved it, your refund of "
                f"{_money(amount)} for order {order_id} is going through today to your card "
                f"ending {self.customer['card_last4']}. You'll see it within 5-10 business "
                "days.")

    def update_address(self) -> str:
        """Change the signed-in customer's shipping address."""
        if self.customer_id is None:
            return SIGN_IN
        match = NEW_ADDRESS.search(self.request.message)
        if match is None:
            return "Sure. What's the new address, including the postcode?"
        address = match.group("address").strip()
        self.update_record("address", address)
        return (f"Done: your shipping address is now {address}. Orders that haven't shipped "
                "yet will go to the new address.")

    def escalate(self) -> str:
        """Hand the conversation to the support team through ``escalate_to_human``."""
        ticket = self.escalate_ticket(self.request.message)
        return (f"I've passed this conversation to our support team (ticket {ticket}). "
                "Someone will pick it up within one business day.")

    def escalate_ticket(self, reason: str) -> str:
        """Call ``escalate_to_human`` and return the ticket it opened."""
        ticket = f"ESC-{self.customer_id or 'GUEST'}"
        self._record("escalate_to_human", {"customer_id": self.customer_id, "reason": reason},
                     {"ticket_id": ticket})
        return ticket

    def answer_policy(self, doc: PolicyDoc, words: set[str]) -> str:
        """Answer from the best-matching document and cite it."""
        self.sources.append(doc.as_source())
        asks_return_window = bool(words & WINDOW_WORDS and words & RETURN_WORDS)
        if asks_return_window and not self.release.carries(Fix.GROUNDED_POLICY_ANSWERS):
            return V13_FEW_SHOT_ANSWER + _citation(doc)
        return doc.text + _citation(doc)


def _progress(order: Mapping[str, Any]) -> str:
    match order["status"]:
        case "delivered":
            return f"was delivered on {order['delivered_on']}"
        case "shipped":
            return f"has shipped (tracking {order['tracking']})"
        case _:
            return "is out for delivery today"


def _not_found(order_id: str) -> str:
    return (f"I couldn't find order {order_id} on your account. Please check the order number "
            "in your confirmation email.")


def respond(request: Mapping[str, Any], *, release: str = "post-fix") -> dict[str, Any]:
    """Handle one customer request with the given release of the assistant.

    ``request`` is ``{"message": str, "customer_id": str?, "order_id": str?, "messages":
    [{role, content}]?}``. Returns ``output``, ``tool_calls``, ``sources``, ``approvals`` and
    ``metadata``.
    """
    if release not in RELEASES:
        raise ValueError(f"unknown release {release!r}; valid releases: "
                         f"{', '.join(RELEASES)}")
    config = RELEASES[release]
    conversation = Conversation(parse_request(request), config)
    output = conversation.reply()
    latency_ms = (config.base_latency_ms + 420 * len(conversation.tool_calls)
                  + 180 * len(conversation.sources))
    return {
        "output": output,
        "tool_calls": conversation.tool_calls,
        "sources": conversation.sources,
        "approvals": conversation.approvals,
        "metadata": {"model_route": config.model_route,
                     "prompt_version": config.prompt_version,
                     "latency_ms": latency_ms},
    }
