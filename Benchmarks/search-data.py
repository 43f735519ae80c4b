#!/usr/bin/env python3
"""Fills a chat SQLite database (already migrated by chat-admin) with N messages for Benchmarks/search.sh, through
the real schema: conversations, messages with their sequence numbers, and the FTS5 trigger indexing each row as the
server's inserts do. Text is 4-30 words drawn from a support-chat vocabulary with a Zipf-like skew (a few words very
common, most rare), a tenth of the messages in German, French or Russian. Writes the query words (the vocabulary
without its most common hundred, as people search for content words) to WORDS_FILE.
Usage: search-data.py DB N WORDS_FILE"""
import random
import sqlite3
import sys
import time

db_path, count, words_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(7)

base = """the a to and i my you is for of it in your we on this that be have with not can please order account
payment refund delivery parcel package shipping invoice card charge charged subscription plan password login email
address phone number help thanks thank hello hi sorry problem issue error broken missing late wrong damaged return
exchange cancel cancelled change update upgrade downgrade price discount coupon voucher code bill billing receipt
tracking courier warehouse store app website page browser mobile android iphone laptop screen button settings
notification message chat agent support team manager week day today tomorrow yesterday morning evening hour minute
still yet again already never always soon now when where why how what which who could would should will did does
received sent arrived shipped ordered paid refunded credited debited blocked locked reset verify verification
confirm confirmation link click download install restart crash slow fast working stopped size colour color model
item items product products box label customs fee fees tax taxes currency euro dollar pound transfer bank wallet
gift present birthday holiday weekend office home work contract term terms policy warranty guarantee repair
replacement spare part parts battery charger cable adapter printer ink paper toner keyboard mouse monitor headphones
speaker camera lens tripod bag case cover strap shoe shoes shirt jacket dress trousers size small medium large extra
fit tight loose quality material cotton leather wool blue red green black white grey yellow pink purple orange
brown table chair sofa bed mattress pillow lamp desk shelf door window kitchen garden tool drill saw hammer nail
screw paint brush wall floor roof heating boiler water gas electricity meter reading tariff contract""".split()
foreign = {
    "de": "bestellung lieferung paket rechnung zahlung rückerstattung straße kunde konto passwort hilfe danke bitte "
          "problem fehler woche heute morgen größe farbe grüße".split(),
    "fr": "commande livraison colis facture paiement remboursement café adresse compte mot passe aide merci "
          "problème erreur semaine aujourd'hui demain taille couleur été".split(),
    "ru": "заказ доставка посылка счёт оплата возврат адрес аккаунт пароль помощь спасибо привет проблема ошибка "
          "неделя сегодня завтра размер цвет".split(),
}
# Rare words: product codes and names a support chat is full of, so the vocabulary is not all common words.
rare = [f"{rng.choice(['sku', 'ord', 'ticket', 'case', 'model'])}{rng.randrange(10000, 99999)}" for _ in range(3000)]
rare += [rng.choice(["anna", "ben", "carla", "dmitri", "elif", "farid", "grace", "hiro", "ines", "jonas"]) + str(i) for i in range(500)]
vocabulary = base + rare
weights = [1.0 / (rank + 1) ** 0.9 for rank in range(len(vocabulary))]
cumulative = []
total = 0.0
for w in weights:
    total += w
    cumulative.append(total)

def text():
    if rng.random() < 0.1:
        words = foreign[rng.choice(list(foreign))]
        return " ".join(rng.choice(words) for _ in range(rng.randint(4, 16)))
    n = rng.randint(4, 30)
    return " ".join(rng.choices(vocabulary, cum_weights=cumulative, k=n))

db = sqlite3.connect(db_path)
db.execute("PRAGMA journal_mode = WAL")
db.execute("PRAGMA synchronous = OFF")
conversations = max(1, count // 200)  # about 200 messages per customer
now = int(time.time() * 1000) - count * 1000
started = time.time()
with db:
    db.executemany("INSERT INTO conversations (customer, last_seq, customer_messages, created_at) VALUES (?, 0, 0, ?)",
                   [(f"customer{c}", now) for c in range(conversations)])
    ids = [row[0] for row in db.execute("SELECT id FROM conversations ORDER BY id")]
seqs = [0] * conversations
ordinals = [0] * conversations
batch = []
for i in range(count):
    c = rng.randrange(conversations)
    seqs[c] += 1
    is_customer = rng.random() < 0.6
    if is_customer:
        ordinals[c] += 1
    sender, role = (f"customer{c}", "customer") if is_customer else ("agent" + str(rng.randrange(20)), "agent")
    batch.append((ids[c], seqs[c], sender, role, f"g{i}", text(), now + i * 1000, ordinals[c], seqs[c]))
    if len(batch) == 50_000 or i == count - 1:
        with db:
            db.executemany("""INSERT INTO messages (conversation_id, seq, sender, sender_role, client_id, body, sent_at,
                              broadcast, customer_ordinal, customer_seq) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)""", batch)
        batch = []
with db:
    db.executemany("UPDATE conversations SET last_seq = ?, customer_messages = ? WHERE id = ?",
                   [(seqs[c], ordinals[c], ids[c]) for c in range(conversations)])
print(f"stored {count} messages in {conversations} conversations in {time.time() - started:.1f} s (indexed as inserted)")
with open(words_path, "w") as f:
    query_words = vocabulary[100:len(base)] + rng.sample(rare, 200) + [w for ws in foreign.values() for w in ws]
    f.write("\n".join(query_words) + "\n")
