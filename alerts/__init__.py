"""Alert emails: rules in ``config/alerts.yaml`` say which new posts are mailed to whom.

``rules`` loads and checks the rules file, ``query`` turns a rule into an Elasticsearch query, ``message``
builds the email, ``mailer`` talks SMTP and ``service`` ties one alert run together; what was sent is
remembered in Elasticsearch through ``index.alert_state``. ``cli`` adds the ``yuqing alert`` sub-command.
"""
