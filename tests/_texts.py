"""Real-style sentences (Banking77, TREC and SMS-spam) for encoder tests that must run
without ../shared: one list, shared by the local and the distributed encoder tests."""

from __future__ import annotations

SAMPLE_TEXTS = [
    "How do I locate my card?",
    "I still have not received my new card, I ordered over a week ago.",
    "Can I get a refund for a purchase I made yesterday?",
    "Why was I charged a fee for withdrawing cash?",
    "My top-up did not go through, what happened?",
    "What is the exchange rate for euros to dollars?",
    "I think someone stole my card and used it.",
    "How long does a transfer to another country take?",
    "Can I change my PIN at any ATM?",
    "The app says my payment was declined, why?",
    "Is there a limit on how much I can top up?",
    "I was charged twice for the same thing.",
    "How do I verify my identity?",
    "Where can I use this card?",
    "My transfer is still pending after three days.",
    "How far is it from Denver to Aspen ?",
    "What county is Modesto , California in ?",
    "Who was Galileo ?",
    "What is an atom ?",
    "When did Hawaii become a state ?",
    "How tall is the Sears Building ?",
    "What does CPR stand for ?",
    "Why does the moon turn orange ?",
    "Name a food high in zinc .",
    "Ok lar... Joking wif u oni...",
    "Free entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005.",
    "U dun say so early hor... U c already then say...",
    "WINNER!! As a valued network customer you have been selected to receive a prize reward!",
    "I'm gonna be home soon and i don't want to talk about this stuff anymore tonight.",
    "Had your mobile 11 months or more? You are entitled to update to the latest colour mobiles",
]
