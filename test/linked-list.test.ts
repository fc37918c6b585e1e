import t from 'tap'
import { LinkedList, type Linked } from '../gateway/core/linked-list.js'

interface Item extends Linked { readonly id: number }
const item = (id: number): Item => ({ id, listPrev: null, listNext: null, listOwner: null })
const ids = (l: LinkedList<Item>): number[] => [...l].map(i => i.id)

t.test('keeps insertion order; removes from head, middle and tail', async t => {
  const l = new LinkedList<Item>()
  const [a, b, c, d] = [item(1), item(2), item(3), item(4)] as [Item, Item, Item, Item]
  for (const i of [a, b, c, d]) l.add(i)
  t.same(ids(l), [1, 2, 3, 4])
  t.equal(l.size, 4)
  t.equal(l.first, a, 'the oldest first')
  t.ok(l.delete(b), 'middle')
  t.same(ids(l), [1, 3, 4])
  t.ok(l.delete(a), 'head')
  t.equal(l.first, c)
  t.ok(l.delete(d), 'tail')
  t.same(ids(l), [3])
  l.add(a)
  t.same(ids(l), [3, 1], 'appended after the new tail')
  t.equal(l.size, 2)
  t.notOk(l.delete(b), 'not in the list any more')
  t.equal(l.size, 2)
})

t.test('a removed item drops every link (nothing of it outlives its request)', async t => {
  const l = new LinkedList<Item>()
  const a = item(1); const b = item(2); const c = item(3)
  l.add(a); l.add(b); l.add(c)
  l.delete(b)
  t.same([b.listPrev, b.listNext, b.listOwner], [null, null, null])
  t.equal(a.listNext, c)
  t.equal(c.listPrev, a)
  t.equal(a.listOwner, l)
})

t.test('adding twice is a no-op; an item cannot sit in two lists', async t => {
  const l = new LinkedList<Item>()
  const other = new LinkedList<Item>()
  const a = item(1)
  l.add(a)
  l.add(a)
  t.equal(l.size, 1)
  t.throws(() => other.add(a), /another list/)
  t.notOk(other.delete(a), 'another list cannot remove it')
  t.equal(l.size, 1)
})

t.test('deleting the current item while iterating visits every other item once', async t => {
  const l = new LinkedList<Item>()
  const all = [1, 2, 3, 4, 5].map(item)
  for (const i of all) l.add(i)
  const seen: number[] = []
  for (const i of l) {
    seen.push(i.id)
    if (i.id % 2 === 1) l.delete(i)
  }
  t.same(seen, [1, 2, 3, 4, 5])
  t.same(ids(l), [2, 4])
  l.clear()
  t.equal(l.size, 0)
  t.equal(l.first, null)
  t.same(ids(l), [])
  t.ok(all.every(i => i.listOwner === null && i.listNext === null && i.listPrev === null), 'clear unlinks every item')
})
