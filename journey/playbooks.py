"""Each stage's playbook, as data: what a small business can do when a stage is weak.

Kept in one table (not in renderers) so the CLI, the Slack replies and the
digests give the same advice, and a workspace with custom stages can be given
advice by adding rows here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Playbook:
    stage: str
    goal: str
    actions: tuple[str, ...]


PLAYBOOKS: dict[str, Playbook] = {
    p.stage: p
    for p in (
        Playbook(
            "awareness",
            "Reach more of the people who could need you.",
            (
                "Claim and complete your Google Business Profile and local listings (local SEO).",
                "Post regularly on the one or two social networks your customers use.",
                "Target search ads at the services people look for nearby.",
            ),
        ),
        Playbook(
            "consideration",
            "Earn trust while people compare you with others.",
            (
                "Show recent reviews and testimonials where people decide.",
                "Publish useful content that answers the questions prospects ask.",
                "Answer inquiries fast: a same-day reply wins most comparisons.",
            ),
        ),
        Playbook(
            "decision",
            "Make saying yes easy.",
            (
                "Show clear prices before checkout or booking.",
                "Offer several payment options (cards, wallets, pay later).",
                "Shorten the checkout or booking form and test it on a phone.",
            ),
        ),
        Playbook(
            "purchase",
            "Turn a first purchase into a good first experience.",
            (
                "Send a thank-you message the same day.",
                "Onboard: explain what happens next and how to get the most out of it.",
                "Ask one short question about the experience to catch problems early.",
            ),
        ),
        Playbook(
            "retention",
            "Bring customers back: keeping one costs about five times less than winning one.",
            (
                "Follow up when a customer is due again (reminders based on their usual gap).",
                "Start a simple loyalty program or membership.",
                "Send personal offers to customers who have gone quiet.",
            ),
        ),
        Playbook(
            "advocacy",
            "Turn happy customers into your most trusted marketing.",
            (
                "Ask recent, happy customers for a review a few days after their purchase.",
                "Run a referral program: reward both the referrer and the friend.",
                "Thank and answer every review, good or bad.",
            ),
        ),
    )
}


def playbook_for(stage: str) -> Playbook | None:
    return PLAYBOOKS.get(stage)


# Which playbook answers a weak step into a stage. Usually the stage's own, but a
# drop into `purchase` happens at checkout, which is the decision playbook's job.
STEP_PLAYBOOK: dict[str, str] = {"purchase": "decision"}


def playbook_for_step(to_stage: str) -> Playbook | None:
    return PLAYBOOKS.get(STEP_PLAYBOOK.get(to_stage, to_stage))
